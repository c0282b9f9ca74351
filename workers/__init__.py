"""quantum-mind workers: the evaluation core, the generators and the Celery tasks that call them."""
