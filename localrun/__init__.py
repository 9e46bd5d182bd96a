"""Run the synthesized pipeline locally on moto: no AWS account, faults injected, costs counted."""
