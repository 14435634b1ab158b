"""The bus: publishing through a transactional outbox, idempotent durable consumers."""
