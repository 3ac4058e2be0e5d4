"""Built-in Reason-RFT task plugins (registered through the reason_rft.tasks entry points)."""
