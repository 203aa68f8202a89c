"""``dispatcher pool from-terraform``: a Terraform module's outputs into a Prefect credentials block and a pool's defaults."""
