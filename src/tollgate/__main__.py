from tollgate.cli.main import main

raise SystemExit(main())
