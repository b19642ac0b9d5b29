"""The SMTP receiver: a face that hands every accepted message to `workflow.inbound`."""
