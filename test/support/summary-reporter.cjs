'use strict';
// Mocha's spec output, plus the plain closing line CI reads ("N passed, N failed"), so a run
// that executed no test is visible as "0 passed" rather than a silent green exit.
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats;
      process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`);
      if (passes === 0 && failures === 0) process.exitCode = 1;
    });
  }
}

module.exports = SummaryReporter;
