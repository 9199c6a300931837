/** The release this build is (a module of its own, so the CLI entry can print it before loading the node). */
export const VERSION = '0.1.0';
