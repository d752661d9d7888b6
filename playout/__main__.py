from playout.cli import main

raise SystemExit(main())
