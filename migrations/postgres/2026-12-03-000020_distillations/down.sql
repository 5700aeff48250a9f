DROP TABLE distillations;
