"""The Socket.IO edge: event handlers, payload shape checks and Engine.IO transport fixes."""
