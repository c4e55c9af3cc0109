//! WebSocket (RFC 6455) on the reactor (see docs/design.md).
