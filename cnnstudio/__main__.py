from cnnstudio.cli import main

raise SystemExit(main())
