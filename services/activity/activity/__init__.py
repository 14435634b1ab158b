"""activity: activities, attachments, opportunity stages and stage gates."""
