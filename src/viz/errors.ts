/**
 * The one error type the viewer's data layer throws. `status` is the HTTP status the server
 * answers with: 404 (no such run/file), 422 (the file exists but is corrupt or invalid),
 * 500 (it could not be read).
 */
export class ViewerDataError extends Error {
  readonly status: 404 | 422 | 500;

  constructor(status: 404 | 422 | 500, message: string) {
    super(message);
    this.name = 'ViewerDataError';
    this.status = status;
  }
}
