"""Tables, migrations and the queries, per aggregate. Backend differences live in ``db``."""
