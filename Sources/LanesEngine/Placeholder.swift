public enum LanesEnginePlaceholder {}
