from qnnlab.cli import main

main()
