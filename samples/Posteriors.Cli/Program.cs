// `posteriors`: the main job (the cold-posterior study) and other commands. See Commands/Cli.cs.
return Posteriors.Cli.Commands.Cli.Run(args);
