from augrec.cli.main import main

main()
