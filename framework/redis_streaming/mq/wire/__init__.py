"""What a message is on the wire and in the hands of a handler: the stream entry's fields
(``codec``), the retry and replay envelopes, the ``Message`` types, and trace context carried
in headers."""
