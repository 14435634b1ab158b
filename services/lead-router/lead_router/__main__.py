from lead_router.main import main

main()
