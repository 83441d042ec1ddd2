from batchyard_cli.main import main

main()
