// CloudWatch metric math, evaluated the way CloudWatch does for one data point per metric: the
// subset the alarms use (numbers, ids, + - * /, comparisons, IF, FILL). Tests hold planned alarms'
// expressions to the behaviour the runbooks and docs promise.
import { strict as assert } from 'node:assert';

/** Metric math over one data point per metric; `undefined` is a missing data point. */
export function evaluateMath(expression: string, values: Record<string, number | undefined>): number | undefined {
  const tokens = expression.match(/[A-Za-z_]\w*|\d+(?:\.\d+)?|>=|<=|[-+*/()<>,]/g) ?? [];
  let position = 0;
  const next = () => tokens[position++] ?? '';
  const arithmetic = (a: number | undefined, b: number | undefined, f: (x: number, y: number) => number) =>
    a === undefined || b === undefined ? undefined : f(a, b);
  const primary = (): number | undefined => {
    const token = next();
    if (token === '(') {
      const value = comparison();
      assert.equal(next(), ')');
      return value;
    }
    if (/^\d/.test(token)) return Number(token);
    if (token === 'IF' || token === 'FILL') {
      assert.equal(next(), '(');
      const args = [comparison()];
      while (tokens[position] === ',') {
        next();
        args.push(comparison());
      }
      assert.equal(next(), ')');
      if (token === 'FILL') return args[0] ?? args[1];
      return args[0] === undefined ? undefined : args[0] !== 0 ? args[1] : args[2];
    }
    assert.ok(token in values, `expression ${expression} reads unknown id ${token}`);
    return values[token];
  };
  const product = (): number | undefined => {
    let value = primary();
    while (tokens[position] === '*' || tokens[position] === '/') {
      const operator = next();
      value = arithmetic(value, primary(), (a, b) => (operator === '*' ? a * b : a / b));
    }
    return value;
  };
  const sum = (): number | undefined => {
    let value = product();
    while (tokens[position] === '+' || tokens[position] === '-') {
      const operator = next();
      value = arithmetic(value, product(), (a, b) => (operator === '+' ? a + b : a - b));
    }
    return value;
  };
  const comparison = (): number | undefined => {
    const value = sum();
    if (!['>', '<', '>=', '<='].includes(tokens[position] ?? '')) return value;
    const operator = next();
    return arithmetic(value, sum(), (a, b) => Number(operator === '>' ? a > b : operator === '<' ? a < b : operator === '>=' ? a >= b : a <= b));
  };
  const result = comparison();
  assert.equal(position, tokens.length, `expression ${expression}: trailing tokens`);
  return result;
}
