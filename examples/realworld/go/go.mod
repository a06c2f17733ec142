module example.com/realworld/greeter

go 1.19
