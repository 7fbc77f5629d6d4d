"""The training engine: datasets (`cnnstudio.train.data`) and, later, the training loop.

Nothing is imported here, so `import cnnstudio.train` stays cheap; import the submodules.
"""
