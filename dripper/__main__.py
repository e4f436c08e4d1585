from dripper.cli import main

main()
