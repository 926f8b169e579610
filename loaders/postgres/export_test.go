package postgres

// DirectGiveUp is directGiveUp, for the tests of package postgres_test.
const DirectGiveUp = directGiveUp
