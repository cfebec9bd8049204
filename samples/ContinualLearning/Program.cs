return Posteriors.Samples.ContinualLearning.ContinualLearningApp.Run(args);
