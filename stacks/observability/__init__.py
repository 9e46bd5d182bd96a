"""What an operator watches: the stage observability, the failure notice, the dashboard and its alarms."""
