"""Reference CSMS worker: a stateless consumer of ``messages_in`` that answers over ``messages_out``."""
