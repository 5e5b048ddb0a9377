// Solves an ALTCHA challenge with ALTCHA's own library (npm altcha-lib), the way the widget does,
// and prints the payload the widget would put into the form: base64 of
// {algorithm, challenge, number, salt, signature}.
//   node altcha_solve.cjs <node_modules dir> '<challenge JSON from GET /api/challenge>'
const { createRequire } = require('node:module');
const path = require('node:path');

async function main() {
  const [modules, text] = process.argv.slice(2);
  const altcha = createRequire(path.join(path.resolve(modules), 'noop.js'))('altcha-lib/v1');
  const challenge = JSON.parse(text);
  const { promise } = altcha.solveChallenge(challenge.challenge, challenge.salt, challenge.algorithm, challenge.maxnumber);
  const solution = await promise;
  if (!solution) {
    console.error('altcha-lib found no solution');
    process.exit(1);
  }
  const payload = {
    algorithm: challenge.algorithm, challenge: challenge.challenge, number: solution.number,
    salt: challenge.salt, signature: challenge.signature,
  };
  process.stdout.write(Buffer.from(JSON.stringify(payload)).toString('base64'));
}

main();
