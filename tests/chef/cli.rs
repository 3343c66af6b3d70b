//! `pincher chef …` run as a user would, against goiardi.
