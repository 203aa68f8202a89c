"""Reading usage: reports and costs, budgets enforced and alerted on, events to Prefect."""
