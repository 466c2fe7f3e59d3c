"""``python -m lit_cert ...`` entry point."""

from lit_cert.commands import main

if __name__ == "__main__":
    main()
