from roar.cli.entry import main

main()
