"""The baseline a Python team would write first: a Celery task per event per webhook."""
