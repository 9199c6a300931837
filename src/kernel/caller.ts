/** Who is making a request: every service call carries one; scoping decisions read only this. */
export interface Caller {
  accountUuid: string;
  userUuid: string;
  isAdmin: boolean;
  requestId: string;
  /** the session (token) the request came with; absent for work not started by a request */
  sessionUuid?: string;
}
