const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a uuid in its canonical text form: anything else can name no row (and would make PostgreSQL throw). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
