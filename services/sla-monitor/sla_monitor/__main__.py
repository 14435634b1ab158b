from sla_monitor.main import main

main()
