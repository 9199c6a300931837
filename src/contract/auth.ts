/** Wire shapes of logging in (`POST /v1/auth/login`) and `GET /v1/auth/whoami`: shared by the server and the web console. */
import { type Static, Type } from 'typebox';

export const LoginBody = Type.Object(
  {
    account: Type.String({ minLength: 1, maxLength: 255 }),
    user: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 255,
        description: 'user of the account (default: the user named like the account)',
      }),
    ),
    password: Type.String({ minLength: 1, maxLength: 256 }),
  },
  { additionalProperties: false },
);
export type LoginBody = Static<typeof LoginBody>;

export const LoginReply = Type.Object({
  token: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
  accountUuid: Type.String(),
  userUuid: Type.String(),
});
export type LoginReply = Static<typeof LoginReply>;

export const WhoAmI = Type.Object({
  accountUuid: Type.String(),
  userUuid: Type.String(),
  isAdmin: Type.Boolean(),
});
export type WhoAmI = Static<typeof WhoAmI>;
