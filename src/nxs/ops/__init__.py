"""Operations: logging, the line writer behind the logs, and what sits between NXS and an
operator's infrastructure (trusted proxies, CORS)."""
