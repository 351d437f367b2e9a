from captcha_nb.cli import main

raise SystemExit(main())
