import os
from cnnstudio.core.project import Project, load_project, save_project
from cnnstudio.core.templates import build_template
def test_weights_reference_follows_the_file(tmp_path):
    a = tmp_path / "a"; b = tmp_path / "b" / "c"; a.mkdir(); b.mkdir(parents=True)
    p = Project.new(build_template("lenet5")); p.weights = "net.weights.pt"
    save_project(p, a / "net.cnnproj")
    q = load_project(a / "net.cnnproj")
    assert q.weights == "net.weights.pt" and q.weights_file() == str(a / "net.weights.pt")
    save_project(q, b / "copy.cnnproj")
    r = load_project(b / "copy.cnnproj")
    assert r.weights == os.path.join("..", "..", "a", "net.weights.pt")
    assert r.weights_file() == str(a / "net.weights.pt")
    assert q.weights == "net.weights.pt"
