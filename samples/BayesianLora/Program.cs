return Posteriors.Samples.BayesianLora.BayesianLoraApp.Run(args);
