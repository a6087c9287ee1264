from syncagent.cli import main

main()
