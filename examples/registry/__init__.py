"""Two small applications that find each other through the service registry."""
