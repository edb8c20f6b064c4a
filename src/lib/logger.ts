/**
 * The logging the core needs, satisfied by a pino logger. Kept as an
 * interface so the routers and services never import a Node-only module.
 */
export interface Logger {
  isLevelEnabled(level: string): boolean;
  debug(object: object, message?: string): void;
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** A logger that drops everything; the default for apps built in tests. */
export const silentLogger: Logger = {
  isLevelEnabled: () => false,
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
