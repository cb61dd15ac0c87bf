public enum LanesPacketPlaceholder {}
