from policyfeed.cli import main

main()
