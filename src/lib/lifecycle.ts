/** Whether the process is on its way out; shared by the entrypoint, the headers middleware and readiness. */
export interface Lifecycle {
  shuttingDown: boolean;
}
