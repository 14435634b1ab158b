from collab.main import main

main()
