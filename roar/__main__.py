from roar.cli.main import run_cli

run_cli()
