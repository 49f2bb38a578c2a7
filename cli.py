"""Run the gpuprop command line from a checkout, without installing: ``python cli.py train ...``."""

from gpuprop.cli import main

if __name__ == "__main__":
    main()
