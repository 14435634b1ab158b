"""collab: collaboration tickets between sales, presales, finance and after-sales; customer 360."""
